"""The git boundary: repositories, versions, snapshots, foreign repositories, the
http-backend and integrity checks. Nothing outside this package runs git."""
