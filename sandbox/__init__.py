"""The shared platform of the lead-to-cash sandbox: CLI, wiring, OData layer, outbox, control plane, clients."""
