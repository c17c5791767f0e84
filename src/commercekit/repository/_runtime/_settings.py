"""``ReadSettings``: how reads wait for tokens, probe replicas and eject failing ones."""

from __future__ import annotations

import attrs

from commercekit.balancer import OutlierDetection

__all__ = ["ReadSettings"]


@attrs.frozen(kw_only=True)
class ReadSettings:
    """Timing of reads: token waits, probes, and the balancer's passive ejection of replicas.

    * ``token_wait_s``: how long a read waits for a replica to replay its token.
    * ``probe_interval_s``: how often the read path probes replicas (lag, position).
    * ``eject_after_failures``: failed reads in a row that eject a replica.
    * ``eject_s`` and ``max_eject_s``: the first ejection lasts ``eject_s``;
      each further one a multiple longer (2x, 3x, ...) up to ``max_eject_s``
      (the balancer's :class:`~commercekit.balancer.OutlierDetection`).
    * ``background_probes``: the read that finds a probe due starts it on a
      short-lived thread and goes on, so a replica that does not answer the
      probe never delays a read (False: that read runs the probe itself, as
      tests with a fake clock want).
    """

    token_wait_s: float = 0.5
    probe_interval_s: float = 1.0
    eject_after_failures: int = 1
    eject_s: float = 1.0
    max_eject_s: float = 30.0
    background_probes: bool = True

    def outlier_detection(self) -> OutlierDetection:
        """The balancer's settings for these (any replica may be ejected: the primary stays)."""
        return OutlierDetection(
            consecutive_failures=self.eject_after_failures,
            base_ejection_s=self.eject_s,
            max_ejection_s=self.max_eject_s,
            max_ejected_fraction=1.0,
        )
