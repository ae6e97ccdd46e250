"""Transfer evaluation of the learned trunk and mask quality against human masks (paper,
section 6; its section 5 for the masks), the library under ``eval/``'s programs.

Modules: :mod:`.trunk` (weights in, layers frozen), :mod:`.runs` (the run folder:
config, checkpoint, ``results.json`` / ``results.csv``), :mod:`.voc` (PASCAL VOC and SBD
in their standard layouts), :mod:`.stanford40` (Stanford 40 Actions), :mod:`.metrics`
(VOC detection AP), :mod:`.ranking` (AP of ranked lists), :mod:`.detection`,
:mod:`.finetune` (the schedule, data and loop classification and segmentation share),
:mod:`.classification`, :mod:`.segmentation`, :mod:`.masks` (J and F as the DAVIS 2017
toolkit computes them) and :mod:`.table` (runs collated into Table 1 and Figures 8 and
10). torch is imported here and in :mod:`fastunlc.training` only, never by
``import fastunlc``.
"""
