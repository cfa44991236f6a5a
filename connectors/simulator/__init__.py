"""A simulated set of sales platforms, so the whole loop runs on one machine.

``rooms`` models what each live room displays; ``buyers`` generates the orders its
buyers place; ``server`` receives stockcast's pushes over HTTP; ``connector`` is the
``simulator`` connector plugin that pushes to it. Nothing here imports ``sync_worker``:
the simulator stands where the platforms stand and knows only the published formats.
"""
