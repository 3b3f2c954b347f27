"""SDC, single-modality deep clustering (DeepCluster): every encoder learns from its own clusters.

Both encoders are trained in one run, each as a separate DeepCluster would train it, so that one
command gives the paper's SDC numbers for video and for audio: each encoder stops early on its own
pseudo-label validation loss and is frozen from then on while the other trains on
(``independent_slots``), and with ``clustering.balanced_sampling`` each is balanced over its own
clusters (per-video loss weights, ``DeepClusteringMethod.balance_weights``). What they still share is
the sequence of clip batches and the iteration boundaries (both re-cluster together).
"""
from .deep_clustering import DeepClusteringMethod


class SDC(DeepClusteringMethod):
    name = "sdc"
    slots = {"video": "video", "audio": "audio"}
    clusterings = {"video": ["video"], "audio": ["audio"]}
    targets = {"video": ["video"], "audio": ["audio"]}
    independent_slots = True
