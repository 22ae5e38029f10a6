"""The assistant: an OpenAI-compatible API (``/v1``) over models configured per alias.

``backends.py`` is the small interface every model backend implements, ``local.py`` runs GGUF
chat models with llama-cpp-python, ``embeddings.py`` the embedded sentence encoder,
``service.py`` resolves aliases and queues requests per model, ``schemas.py`` and ``errors.py``
are OpenAI's wire formats, ``api.py`` the routes. Documents and RAG (the Albert API's
collections, documents and search): ``models.py``, ``documents.py``, ``ingest.py``,
``parsers.py``, ``chunking.py``, ``search.py``, ``vectors.py``, ``rag.py``, ``rag_schemas.py``,
``collections_api.py``. See docs/assistant.md.
"""
