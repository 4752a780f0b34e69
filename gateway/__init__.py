"""The gateway: nginx as the single origin (contract §10). This package only renders its
configuration (gateway/kitsu.conf.template); nginx itself is Debian's locally, the official
image in compose."""
