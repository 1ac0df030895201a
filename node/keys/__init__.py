"""The key directory: participants' public keys, announced with a signature, kept in the index
database and fetched from peers (``directory.py``); a service above the pure ``node.crypto``."""
