"""CaseTrail core: the rules, pure — values in, values out.

Recording standards per enforcement category, completeness, legal deadlines on the
Chinese working-day calendar, legal-review gate, and custody primitives (canonical
JSON, capture manifests, per-case hash chain, Merkle log, signed checkpoints).
No I/O beyond reading the package's own data files.
"""
