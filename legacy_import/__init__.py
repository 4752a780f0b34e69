"""The cut-over from the old deployment (contract §13): ``python -m legacy_import``.

Python only moves bytes: each old table is streamed with ``COPY … TO STDOUT`` from the old
database (one read-only, repeatable-read transaction: one consistent snapshot) into
``COPY … FROM STDIN`` of its landing table here (sql/legacy/landing.sql), and every rule of the
import — what maps where, what is skipped or repaired and why — is SQL (sql/legacy/import.sql).
"""
