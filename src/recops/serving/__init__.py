"""recops.serving: the real-time inference server.

The heavy part is built in batch when a model version loads (item vectors, FAISS
index); the fresh part runs per request (the user vector from the user's latest
events). Start it with ``recops serve --models DIR`` or build the app yourself::

    from recops.serving import ServerSettings, create_app
    app = create_app(ServerSettings(model_repository="models"))
"""

from recops.serving.app import create_app
from recops.serving.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
