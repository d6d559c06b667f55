"""The demo plant simulator: one process model served over OPC UA and MQTT (python -m simulator)."""
