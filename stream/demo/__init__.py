"""The end-to-end demo (`creative-select demo`) and the plots of simulation reports."""
