"""The Eclipse DSP TCK's cases (DSP 2025-1), re-created in Python and run against a live node in
conformance mode; one test per TCK case, named after its id (``/work/notes/dsp-tck.md``)."""
