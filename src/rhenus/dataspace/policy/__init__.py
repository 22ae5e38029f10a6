"""Usage policies: the ODRL 2.2 engine that decides whether a participant may use a dataset under
an offer or agreement, checks offers before they are published, and tells whether two policies
state the same terms (DSP 2025-1 negotiation compares the offer agreed with the one offered).
Pure logic: no HTTP, no database. The public interface is :mod:`.service` and :mod:`.schemas`."""
