"""Pure domain: tags, quality, configuration model and alarm logic.

Nothing here opens a socket, imports Dash or a protocol library; every other
package depends on this one and never the other way round.
"""
