"""annotate: label's engine on metadata.annotations (`key=value` sets, `key-` removes, --overwrite)."""

from __future__ import annotations

import argparse

from pbctl import verb
from pbctl.common import Ctx
from pbctl.verbs import label


async def run_annotate(ctx: Ctx, args: argparse.Namespace) -> int:
    return await label.run_label(ctx, args, "annotations")


VERB = verb.Verb("annotate", "Update the annotations on a resource", label.arguments, run_annotate, rank=80)
