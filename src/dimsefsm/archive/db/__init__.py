"""The Q/R archive's index in a database (SQLAlchemy Core): schema, filing, queries, import.

``schema`` declares the tables and opens an engine (SQLite by default, any
SQLAlchemy URL such as ``postgresql+psycopg://`` otherwise) after checking the
schema version; ``columns`` says which attributes are columns and how their
values are normalised; ``query`` compiles a C-FIND identifier into SQL;
``archive.index.ArchiveIndex`` ties them together for the SCP.
"""
