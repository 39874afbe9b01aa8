"""One command per system that reproduces its ablation table on the toy substrate: train every
variant for every seed (resumable), evaluate each, and print the table as mean ± sd."""
