// One Matrix user driven by matrix-js-sdk under Node.js, against a live Rhenus node
// (tests/e2e/test_live_matrix_js.py): log in with a password, start the client and wait for
// its first sync (PREPARED), join the room it is invited to, send a message, see its remote
// echo come back through /sync, and receive a message another user sends in reply.
//
//   MATRIX_PASSWORD=… node talk.mjs --base-url http://127.0.0.1:8080 --user alice \
//     --room '!id:server' --send 'hello' --from '@bob:server' --expect 'hi' \
//     [--timeout 30000] [--crypto]
//
// With --crypto the client first starts the SDK's rust crypto (WebAssembly, bundled in the
// package: nothing is fetched), in memory: in an encrypted room its message goes out encrypted
// and the reply is decrypted. Prints one JSON object on stdout (what the client saw) and exits
// 0; on an error or a timeout it prints {"error": …} and exits 1. The SDK's own logging goes
// to stderr (MATRIX_JS_LOG_LEVEL, "warn" unless set).

import { parseArgs } from "node:util";

// Before the SDK is loaded: stdout is for the result only.
for (const method of ["log", "info", "debug", "warn", "trace"]) {
    console[method] = console.error;
}
const sdk = await import("matrix-js-sdk");
const { logger } = await import("matrix-js-sdk/lib/logger.js");
logger.setLevel(process.env.MATRIX_JS_LOG_LEVEL ?? "warn");

let client;
let step = "starting";
const { values: args } = parseArgs({
    options: {
        "base-url": { type: "string" },
        user: { type: "string" },
        room: { type: "string" },
        send: { type: "string" },
        from: { type: "string" },
        expect: { type: "string" },
        timeout: { type: "string", default: "30000" },
        crypto: { type: "boolean", default: false },
    },
});
for (const name of ["base-url", "user", "room", "send", "from", "expect"]) {
    if (args[name] === undefined) finish(2, { error: `--${name} is required` });
}
const password = process.env.MATRIX_PASSWORD;
if (!password) finish(2, { error: "MATRIX_PASSWORD is not set" });

const timer = setTimeout(
    () => finish(1, { error: `timed out after ${args.timeout} ms while ${step}` }),
    Number(args.timeout),
);

function finish(code, result) {
    client?.stopClient();
    process.stdout.write(JSON.stringify(result) + "\n");
    process.exit(code);
}

/** Resolves once `check()` is true, checked now and after each sync the client processes. */
function until(what, check) {
    step = what;
    return new Promise((resolve) => {
        const test = () => {
            const found = check();
            if (found) {
                client.off(sdk.ClientEvent.Sync, test);
                resolve(found);
            }
        };
        client.on(sdk.ClientEvent.Sync, test);
        test();
    });
}

async function main() {
    const baseUrl = args["base-url"];
    step = "logging in";
    const anonymous = sdk.createClient({ baseUrl });
    const { flows } = await anonymous.loginFlows();
    const login = await anonymous.loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: args.user },
        password,
        initial_device_display_name: "matrix-js-sdk on Node.js",
    });
    client = sdk.createClient({
        baseUrl,
        accessToken: login.access_token,
        userId: login.user_id,
        deviceId: login.device_id,
    });
    const me = client.getUserId();
    const { user_id: whoami } = await client.whoami();
    if (args.crypto) {
        step = "starting the rust crypto";
        await client.initRustCrypto({ useIndexedDB: false });
    }

    step = "waiting for the first sync";
    const prepared = new Promise((resolve, reject) => {
        client.on(sdk.ClientEvent.Sync, (state, _previous, data) => {
            if (state === sdk.SyncState.Prepared) resolve(state);
            if (state === sdk.SyncState.Error) reject(data?.error ?? new Error("sync error"));
        });
    });
    // Listening before the client starts: nothing it receives can be missed.
    // An encrypted message is in the timeline before it is decrypted: it is checked again then.
    const received = new Promise((resolve) => {
        const check = (event) => {
            if (
                event.getRoomId() === args.room &&
                event.getType() === sdk.EventType.RoomMessage &&
                event.getSender() === args.from &&
                event.getContent().body === args.expect
            ) {
                resolve(event);
            }
        };
        client.on(sdk.RoomEvent.Timeline, (event, _room, toStartOfTimeline) => {
            if (!toStartOfTimeline) check(event);
        });
        client.on(sdk.MatrixEventEvent.Decrypted, check);
    });
    await client.startClient({ initialSyncLimit: 10 });
    const syncState = await prepared;

    const invited = await until("waiting for the invitation", () => {
        const room = client.getRoom(args.room);
        return room?.getMyMembership() === sdk.KnownMembership.Invite && room;
    });
    const inviter = invited.getMember(me)?.events.member?.getSender();
    step = "joining";
    await client.joinRoom(args.room);
    const room = await until("waiting for the join to come back", () => {
        const found = client.getRoom(args.room);
        return found?.getMyMembership() === sdk.KnownMembership.Join && found;
    });

    step = "sending";
    const { event_id: sentId } = await client.sendTextMessage(args.room, args.send);
    const echo = await until("waiting for the remote echo", () =>
        room
            .getLiveTimeline()
            .getEvents()
            .find((e) => e.getId() === sentId && e.status === null),
    );

    step = `waiting for ${args.from}'s message`;
    const reply = await received;
    clearTimeout(timer);
    finish(0, {
        user_id: me,
        whoami,
        device_id: client.getDeviceId(),
        login_flows: flows.map((f) => f.type),
        sync_state: syncState,
        invited_by: inviter,
        room_id: room.roomId,
        room_name: room.name,
        membership: room.getMyMembership(),
        joined_members: room.getJoinedMembers().map((m) => m.userId).sort(),
        crypto: client.getCrypto()?.getVersion() ?? null,
        room_encrypted: client.isRoomEncrypted(room.roomId),
        sent: {
            event_id: sentId,
            echo_body: echo.getContent().body,
            echo_sender: echo.getSender(),
            encrypted: echo.isEncrypted(),
        },
        received: {
            event_id: reply.getId(),
            sender: reply.getSender(),
            type: reply.getType(),
            body: reply.getContent().body,
            encrypted: reply.isEncrypted(),
        },
    });
}

main().catch((error) =>
    finish(1, {
        error: `${step}: ${error?.message ?? error}`,
        errcode: error?.errcode,
        status: error?.httpStatus,
    }),
);
