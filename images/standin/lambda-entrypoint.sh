#!/bin/sh
# Entrypoint of the STAND-IN Lambda base image (images/standin/README.md), not AWS's. Like the AWS base
# image's /lambda-entrypoint.sh when AWS_LAMBDA_RUNTIME_API is set: run the Runtime Interface Client on the
# handler given as the command. There is no Runtime Interface Emulator here: a Runtime API must be served.
set -eu
if [ -z "${AWS_LAMBDA_RUNTIME_API:-}" ]; then
    echo "stand-in Lambda base image: AWS_LAMBDA_RUNTIME_API is not set (this image has no emulator)" >&2
    exit 64
fi
if [ "$#" -ne 1 ]; then
    echo "stand-in Lambda base image: expected one argument, the handler (module.function)" >&2
    exit 64
fi
export _HANDLER="$1"
echo "stand-in Lambda base image (Debian trixie, not AWS's): starting $1" >&2
exec python -m awslambdaric "$1"
