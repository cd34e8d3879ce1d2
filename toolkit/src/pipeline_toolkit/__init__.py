"""The embedded target: an in-process AWS emulator, the local function runtime and the CLI."""
