"""Audio backbones behind one small interface, registered by name (see `registry`)."""
