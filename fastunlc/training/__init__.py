"""Training and inference of the mask network (Pathak et al., CVPR 2017, sections 4-5).

The only part of fastunlc that imports torch: ``import fastunlc`` and the uNLC engine
never load it. Modules: :mod:`.model` (AlexNet trunk and mask head), :mod:`.crops`
(crop drawing and the batched crop kernel), :mod:`.sources` (built datasets, synthetic
data), :mod:`.coco` (COCO instance masks), :mod:`.loader` (the batched device loader and
the reference DataLoader), :mod:`.config` (the run's configuration), :mod:`.run` (the
training loop) and :mod:`.predict` (the network's masks for videos). The programs are
``train/train.py`` and ``train/predict.py``.
"""
