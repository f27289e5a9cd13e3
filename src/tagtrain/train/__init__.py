"""Training: backbone, augmentation, head/fine-tune loops, splits, jobs (torch).

Deliberately empty: import the module you need (``tagtrain.train.backbone``...), so that light
processes such as the worker's supervisor can import ``tagtrain.train.worker`` without torch.
"""
