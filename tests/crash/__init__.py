"""The crash and fault suite: real server and worker processes killed with SIGKILL under load."""
