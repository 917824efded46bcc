"""Every job of the api, registered with the one queue by importing their modules here."""

from app.notify.tasks import deliver_notification, sweep_notifications

__all__ = ["deliver_notification", "sweep_notifications"]
