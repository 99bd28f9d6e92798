"""Camera endpoint keys stored as digests; robot codes validated; robot and camera history."""

from typing import Any

import django.db.models.deletion
import eppark.devices.models
import simple_history.models  # type: ignore[import-untyped]
from django.conf import settings
from django.db import migrations, models

from eppark.devices.keys import key_digest, key_hint


def hash_plaintext_keys(apps: Any, schema_editor: Any) -> None:
    """Every stored endpoint key becomes its SHA-256 digest and a hint; the key itself goes.

    Going back cannot bring the keys back: cameras must then be given new ones.
    """
    Camera = apps.get_model("devices", "Camera")
    for pk, key in Camera.objects.exclude(key__isnull=True).exclude(key="").values_list("pk", "key"):
        Camera.objects.filter(pk=pk).update(key_digest=key_digest(key), key_hint=key_hint(key))


class Migration(migrations.Migration):

    dependencies = [
        ('devices', '0005_lean_indexes'),
        ('lots', '0002_gate_opening_channel'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='camera',
            name='key_digest',
            field=models.CharField(blank=True, editable=False, help_text='SHA-256 of the secret part of the URL the camera posts to (/devices/lpr/<vendor>/<key>); the key itself is never stored.', max_length=64, null=True, unique=True, verbose_name='endpoint key digest'),
        ),
        migrations.AddField(
            model_name='camera',
            name='key_hint',
            field=models.CharField(blank=True, editable=False, max_length=8, verbose_name='endpoint key ends with'),
        ),
        migrations.RunPython(hash_plaintext_keys, migrations.RunPython.noop, elidable=True),
        migrations.RemoveField(
            model_name='camera',
            name='key',
        ),
        migrations.AlterField(
            model_name='robot',
            name='code',
            field=models.CharField(help_text="1 to 64 characters: ASCII letters, digits, '.', '_' or '-', starting with a letter or digit (no spaces, no '/', '+' or '#', no Chinese characters), and not 'gateway'", max_length=64, unique=True, validators=[eppark.devices.models.validate_robot_code], verbose_name='factory code'),
        ),
        migrations.CreateModel(
            name='HistoricalCamera',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('vendor', models.CharField(choices=[('vzenith', 'Vzenith / Qianyi'), ('hxzx', 'HXZX'), ('hikvision', 'Hikvision'), ('dahua', 'Dahua'), ('ezviz', 'Ezviz (environment)')], max_length=16, verbose_name='vendor')),
                ('name', models.CharField(blank=True, max_length=128, verbose_name='name')),
                ('key_hint', models.CharField(blank=True, editable=False, max_length=8, verbose_name='endpoint key ends with')),
                ('serial', models.CharField(blank=True, max_length=128, verbose_name='serial number')),
                ('ezviz_serial', models.CharField(blank=True, max_length=64, verbose_name='Ezviz device serial')),
                ('api_url', models.URLField(blank=True, help_text='e.g. http://192.168.1.64 — for opening the barrier through the camera.', verbose_name='camera API address')),
                ('api_username', models.CharField(blank=True, max_length=64, verbose_name='camera API user')),
                ('online', models.BooleanField(default=False, verbose_name='online')),
                ('last_heartbeat_at', models.DateTimeField(blank=True, null=True, verbose_name='last heartbeat')),
                ('created_at', models.DateTimeField(blank=True, editable=False, verbose_name='created')),
                ('updated_at', models.DateTimeField(blank=True, editable=False, verbose_name='updated')),
                ('history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history_date', models.DateTimeField(db_index=True)),
                ('history_change_reason', models.CharField(max_length=100, null=True)),
                ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                ('gate', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='lots.gate', verbose_name='gate')),
                ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('lot', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='lots.lot', verbose_name='lot')),
                ('robot', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='devices.robot', verbose_name='robot')),
            ],
            options={
                'verbose_name': 'historical camera',
                'verbose_name_plural': 'historical cameras',
                'ordering': ('-history_date', '-history_id'),
                'get_latest_by': ('history_date', 'history_id'),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='HistoricalRobot',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('code', models.CharField(db_index=True, help_text="1 to 64 characters: ASCII letters, digits, '.', '_' or '-', starting with a letter or digit (no spaces, no '/', '+' or '#', no Chinese characters), and not 'gateway'", max_length=64, validators=[eppark.devices.models.validate_robot_code], verbose_name='factory code')),
                ('name', models.CharField(help_text='e.g. 彩科出口', max_length=128, verbose_name='name')),
                ('phone', models.CharField(blank=True, max_length=32, verbose_name='SIM phone number')),
                ('online', models.BooleanField(default=False, verbose_name='online')),
                ('last_seen_at', models.DateTimeField(blank=True, null=True, verbose_name='last seen')),
                ('created_at', models.DateTimeField(blank=True, editable=False, verbose_name='created')),
                ('updated_at', models.DateTimeField(blank=True, editable=False, verbose_name='updated')),
                ('history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history_date', models.DateTimeField(db_index=True)),
                ('history_change_reason', models.CharField(max_length=100, null=True)),
                ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                ('gate', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='lots.gate', verbose_name='gate')),
                ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('lot', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='lots.lot', verbose_name='lot')),
            ],
            options={
                'verbose_name': 'historical robot',
                'verbose_name_plural': 'historical robots',
                'ordering': ('-history_date', '-history_id'),
                'get_latest_by': ('history_date', 'history_id'),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
    ]
