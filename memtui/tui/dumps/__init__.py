"""The heap-dump explorer: analysis in a bounded child process, and its screens."""
