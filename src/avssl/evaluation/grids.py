"""The evaluations' default grids as plain tuples, for the ``avssl eval`` options without importing the
evaluation modules (torch, faiss, scikit-learn). tests/test_config_files.py checks that they equal the
modules' own constants (``linear.FC_LRS``, ``finetune.FULL_LRS`` and ``DEFAULT_LRS``, ``svm.SVM_CS``,
``retrieval.RECALL_KS``)."""

FC_LRS = (0.001, 0.002, 0.004, 0.006, 0.008, 0.01, 0.02, 0.04)  # Table 12, "FC only"
FULL_LRS = (0.001, 0.002, 0.004, 0.006, 0.008, 0.01)  # Table 12, "Full"
DEFAULT_LRS = (0.01,)  # of fine-tuning
SVM_CS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
RECALL_KS = (1, 5, 20)
