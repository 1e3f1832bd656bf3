"""How a face in a photo becomes a model crop: detectors (``detectors``: the protocol, the
options and the factory; one module per detector), framing (``framing``: the model's
:class:`~fabrec.faces.framing.Framing`) and labelled faces framed the way ``predict`` frames
them (``labelled``)."""
