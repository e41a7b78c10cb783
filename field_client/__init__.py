"""CaseTrail field client: device keys, capture manifests, offline queue and sync.

Talks to the server over HTTP only.
"""
