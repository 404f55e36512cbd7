"""Reference documentation generated from the code itself, so it cannot drift from it.

`config_reference` walks the pydantic models of `aisre.yaml` (every key path, type, default,
constraint and description) and `config_schema` gives their JSON Schema for editors; `cli_reference`
walks the click command tree behind `aisre`. `aisre docs config|cli` print them; the committed copies
(docs/config-reference.md, docs/aisre.schema.json, docs/cli-reference.md) are checked against them by
tests/test_docs_reference.py.
"""
