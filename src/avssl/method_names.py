"""The names of the pretraining methods a user can start, without importing them.

``avssl pretrain --method`` offers these choices; the parser is built before any command runs, so
it must not import ``avssl.methods`` (torch, faiss and the networks): ``avssl --help`` stays fast.
Keep the tuple in step with ``avssl.methods.METHODS`` (tests/test_config_files.py checks it).
"""

# sorted: the names of avssl.methods.METHODS
USER_METHODS = ("avts", "cdc", "crisscross", "mdc", "sdc", "supervised", "xdc", "xdc-audio-audio", "xdc-video-video")
