"""End-to-end tests: whole runs through real servers, launchers, installs and the Hub, most marked ``slow``.

``make fast_test`` deselects the slow ones by their marker (``-m "not slow"``), wherever they live.
"""
