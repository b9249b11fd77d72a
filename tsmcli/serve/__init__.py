"""`tsm serve`: a trained model behind HTTP and WebSocket (app.py), with batching (batching.py) and a demo
page (static/index.html). Needs pip install 'tsm[serve]'."""
