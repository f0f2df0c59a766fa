"""What goes into training and evaluation: ESC-50 facts and reading (`esc50`), audio reading and the PANNs log-mel
(`audio`), the caption bank and real caption pools, training pairs, the leakage filter (`filtering`), the ESC-50 ->
AudioSet mapping (`ontology`), the caption-filter audit, the pretraining dose's clip sets (`pretrain_dose`), and
where shared data lives (`paths`). May import `config`, `io` and the paper's caption-file readers (`paper.datasets`);
never `models`, `training`, `pipeline`, `analysis` or `report`."""
