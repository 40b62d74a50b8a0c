"""OGC API Features and Tiles: the open-standard HTTP face of every layer."""
