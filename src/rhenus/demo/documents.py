"""The demo's documents: three short service-public-style pages (French, Markdown) that the
assistant chapter puts into a collection at Paris and answers a question from."""

from __future__ import annotations

GUIDES: dict[str, str] = {
    "passeport.md": """# Passeport biométrique

## Coût
Pour un adulte, le timbre fiscal d'un passeport coûte 86 euros.

## Délai
Le passeport est fabriqué en trois semaines environ après le dépôt de la demande en mairie.
""",
    "carte-identite.md": """# Carte nationale d'identité

## Validité
La carte d'identité au format carte bancaire est valable dix ans.

## Renouvellement
Le renouvellement est gratuit, sauf en cas de perte ou de vol : il faut alors un timbre
fiscal de 25 euros.
""",
    "acte-naissance.md": """# Acte de naissance

## Demande
Un acte de naissance se demande en ligne, gratuitement, à la mairie du lieu de naissance.
Il est envoyé par courrier sous quelques jours.
""",
}
QUESTION = "Combien coûte le timbre fiscal d'un passeport pour un adulte ?"
ANSWERED_BY = "passeport.md"
