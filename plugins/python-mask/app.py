"""`mask` in Python: replaces every value of some string columns with the lower-hex sha256
of its UTF-8 bytes; nulls stay null and the schema is unchanged. Config: `columns`
(required), a comma-separated list of string columns. Same behaviour as plugins/mask.

componentize-py looks for the world's exports here: `Transform` (the interface's free
functions) in this module, and the `transformer` resource as `Transformer` in a module
named after the interface, `transform.py`.
"""

import wit_world
from wit_world.exports.transform import PluginInfo


class Transform(wit_world.exports.Transform):
    def info(self) -> PluginInfo:
        return PluginInfo(
            name="mask-py",
            version="1.0.0",
            description="Replaces string values with their lower-hex sha256 (`columns=a,b`); written in Python.",
            stateful=False,
        )
