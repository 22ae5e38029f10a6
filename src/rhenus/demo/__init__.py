"""``rhenus demo``: the federation's story told by live nodes on this machine."""

from rhenus.demo.story import run_demo

__all__ = ["run_demo"]
