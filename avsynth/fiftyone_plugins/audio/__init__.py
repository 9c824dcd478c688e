"""FiftyOne plugin of ``avsynth view``: a panel that plays a sample's audio clip in the App.

FiftyOne loads this file from ``FIFTYONE_PLUGINS_DIR`` (``avsynth view`` points it here); avsynth
never imports it. The panel works in the sample modal (the clip of the open sample) and beside the
grid (the clip of the selected sample, else of the first sample in the view). The clip is the
sample's ``audio_path`` file, served by the App's own ``/media`` route and played by the App's
media player (``types.MediaPlayerView``, an HTML audio element with controls).
"""

from urllib.parse import quote

import fiftyone.operators as foo
import fiftyone.operators.types as types

AUDIO_FIELD = "audio_path"


def media_url(path):
    """The App's URL of a local file (its ``/media`` route)."""
    return "/media?filepath=" + quote(str(path), safe="")


class AudioPlayer(foo.Panel):
    @property
    def config(self):
        return foo.PanelConfig(
            name="audio_player",
            label="Audio (avsynth)",
            surfaces="grid modal",
            help_markdown="Plays the audio clip paired with the sample (`audio_path`).",
        )

    def _sample_id(self, ctx):
        if ctx.current_sample:
            return ctx.current_sample
        if ctx.selected:
            return ctx.selected[0]
        first = ctx.view.limit(1).values("id") if ctx.view is not None else []
        return first[0] if first else None

    def _refresh(self, ctx):
        sid = self._sample_id(ctx)
        state = {"url": None, "title": "No sample", "path": None}
        if sid is not None and ctx.dataset is not None and ctx.dataset.has_sample_field(AUDIO_FIELD):
            sample = ctx.dataset[sid]
            path = sample[AUDIO_FIELD]
            category = sample["category"].label if sample.has_field("category") and sample["category"] else ""
            label = sample["audio_label"] if sample.has_field("audio_label") else ""
            state = {"url": media_url(path), "path": path,
                     "title": f"**{category}**: {label}  \n`{sample['row_id'] if sample.has_field('row_id') else sid}`"}
        ctx.panel.state.url = state["url"]
        ctx.panel.state.title = state["title"]
        ctx.panel.state.path = state["path"]

    def on_load(self, ctx):
        self._refresh(ctx)

    def on_change_current_sample(self, ctx):
        self._refresh(ctx)

    def on_change_selected(self, ctx):
        self._refresh(ctx)

    def on_change_view(self, ctx):
        self._refresh(ctx)

    def render(self, ctx):
        panel = types.Object()
        panel.md(ctx.panel.state.title or "No sample", name="title")
        if ctx.panel.state.url:
            panel.view("player", types.MediaPlayerView(
                url=ctx.panel.state.url, controls=True, width="360px", height="56px",
                config={"file": {"forceAudio": True}}))
        return types.Property(panel, view=types.GridView(orientation="vertical", align_x="left"))


def register(p):
    p.register(AudioPlayer)
