"""Data sources: where values enter Stacklight (device -> source -> Redis) and writes go back.

One module per protocol, registered in registry.py. Nothing outside a protocol
module imports its library (asyncua, aiomqtt); library errors stop there.
"""
