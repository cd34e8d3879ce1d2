"""The dev toolkit: the embedded AWS emulator, the local function runtime, deploy, and the `pipeline` CLI."""
