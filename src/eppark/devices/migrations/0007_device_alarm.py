# Device alarms (a camera whose serial is not the provisioned one…); re-chained at merge.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0006_camera_key_digest_and_history"),
        ("lots", "0002_gate_opening_channel"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="DeviceAlarm",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("serial_mismatch", "serial number differs from the provisioned one")
                        ],
                        max_length=32,
                        verbose_name="kind",
                    ),
                ),
                ("detail", models.CharField(blank=True, max_length=500, verbose_name="detail")),
                ("first_seen_at", models.DateTimeField(verbose_name="first seen")),
                ("last_seen_at", models.DateTimeField(verbose_name="last seen")),
                ("count", models.PositiveIntegerField(default=1, verbose_name="times seen")),
                ("acknowledged", models.BooleanField(default=False, verbose_name="acknowledged")),
                (
                    "acknowledged_at",
                    models.DateTimeField(blank=True, null=True, verbose_name="acknowledged at"),
                ),
                (
                    "acknowledged_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="acknowledged by",
                    ),
                ),
                (
                    "camera",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="alarms",
                        to="devices.camera",
                        verbose_name="camera",
                    ),
                ),
                (
                    "lot",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="device_alarms",
                        to="lots.lot",
                        verbose_name="lot",
                    ),
                ),
            ],
            options={
                "verbose_name": "device alarm",
                "verbose_name_plural": "device alarms",
                "ordering": ["acknowledged", "-last_seen_at"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("acknowledged", False)),
                        fields=("camera", "kind"),
                        name="device_alarm_open_once",
                    )
                ],
            },
        ),
    ]
