#!/bin/sh
# Entry point: validate the model on the data steward's dataset through the Enclave API.
exec python3 /app/validate.py
