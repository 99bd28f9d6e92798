"""The ``eppark`` command line: thin shells over the domain and the server."""
