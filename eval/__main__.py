"""`python -m fairalign.eval <command> ...` = `fairalign eval <command> ...`; the form launchers take:

    accelerate launch --num_processes 8 -m fairalign.eval run --config configs/suites/default.yaml --out runs/rtp
    torchrun --nproc_per_node 8 -m fairalign.eval run --tasks toxicity --model M --out runs/rtp
"""
import sys

from fairalign.scripts.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", *sys.argv[1:]]))
