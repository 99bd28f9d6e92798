"""A reconciliation with no lot: the provider's trades that are no order of ours."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("lots", "0003_renewal_prices"),
        ("payments", "0002_sandboxtrade_refunds"),
    ]

    operations = [
        migrations.AlterField(
            model_name="reconciliation",
            name="lot",
            field=models.ForeignKey(
                blank=True,
                help_text="Empty: trades of the provider's bill that are no order of ours.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="lots.lot",
                verbose_name="lot",
            ),
        ),
    ]
