"""The demo operator: a fictional operator whose catalog exercises every capability."""
