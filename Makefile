# Convenience wrappers; the scripts are the source of truth (fresh Debian may lack make).
.PHONY: run test bench
run:
	scripts/run.sh
test:
	scripts/test.sh
bench:
	scripts/bench.sh
