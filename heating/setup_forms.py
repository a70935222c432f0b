"""The staff's room set-up form (the dashboard's "Rooms" page): a room's name and id, its temperature source and
heaters chosen from the endpoints of the nodes the radio has heard (never typed), and its own presets.

The form only shapes the input; the rules (id, name, ranges, a relay heating one room only) are the services':
the view runs them and puts each ``RoomInputError`` on the field it names (:meth:`RoomSetupForm.add_input_error`).
"""

from __future__ import annotations

from django import forms

from heating.models import Node, Room
from heating.selectors import HeardEndpoint, heard_relays, heard_temperature_sources, house
from heating.services import HEATER_POWER_RANGE, RoomInputError, room_fields_check
from hub.pages.forms import BootstrapFieldsMixin

#: A room's own presets (blank: the house's), as the services name them, with their labels.
PRESET_FIELDS = {
    "comfort": "Comfort",
    "eco": "Eco",
    "away_temperature": "Away",
    "frost": "Frost protection",
    "maximum": "Maximum",
}
DEFAULT_POWER_W = 1000


def _power_field_name(choice: HeardEndpoint) -> str:
    return f"power-{choice.node.pk}-{choice.endpoint}"


class RoomSetupForm(BootstrapFieldsMixin, forms.Form):
    name = forms.CharField(max_length=100, help_text="What the household calls it, e.g. “Living room”.")
    slug = forms.CharField(
        label="Id",
        max_length=64,
        help_text=(
            "In the room's address and MQTT topics (/home/<em>id</em>/temperature): 1 to 64 of a-z, 0-9, _ and -. "
            "Changing it moves the room's topics."
        ),
    )
    temperature_source = forms.ChoiceField(
        label="Temperature from",
        required=False,
        help_text="A temperature endpoint of a node the radio has heard. None: the room has no temperature.",
    )
    heaters = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The relays that switch this room's heaters, with each heater's power in watts.",
    )

    def __init__(self, *args, room: Room | None = None, **kwargs) -> None:
        self.room = room
        self.sources = heard_temperature_sources(room=room)
        self.relays = heard_relays(room=room)
        if room is not None and "initial" not in kwargs:
            kwargs["initial"] = _initial(room)
        super().__init__(*args, **kwargs)
        self.fields["temperature_source"].choices = [("", "None"), *[(c.value, c.label) for c in self.sources]]
        self.fields["heaters"].choices = [(choice.value, choice.label) for choice in self.relays]
        low, high = HEATER_POWER_RANGE
        for choice in self.relays:
            self.fields[_power_field_name(choice)] = forms.IntegerField(
                label=f"Power of {choice.label} (W)",
                required=False,
                min_value=low,
                max_value=high,
                initial=DEFAULT_POWER_W,
            )
        the_house = house()
        for name, label in PRESET_FIELDS.items():
            self.fields[name] = forms.FloatField(
                label=f"{label} (°C)",
                required=False,
                help_text=f"Empty: the house's {getattr(the_house, name):g} °C.",
                widget=forms.NumberInput(attrs={"step": "0.5", "inputmode": "decimal"}),
            )
        for name, field in self.fields.items():
            if name.startswith("power-") or name in PRESET_FIELDS:
                field.widget.attrs["class"] = "form-control"
        # The checkbox list and the power fields are drawn by the template (heater_rows), not by BootstrapFields.
        self.fields["heaters"].widget.attrs["class"] = "form-check-input"
        self.fields["temperature_source"].widget.attrs["class"] = "form-select"
        self.fields["slug"].widget.attrs.update({"autocapitalize": "none", "spellcheck": "false"})

    # --- what the template draws -------------------------------------------------------------------------------

    def heater_rows(self) -> list[dict]:
        """One row per relay heard: its checkbox (checked when chosen), its power field, and the room it heats."""
        chosen = set(self["heaters"].value() or [])
        return [
            {
                "choice": choice,
                "id": f"id_heaters_{index}",
                "checked": choice.value in chosen,
                "power": self[_power_field_name(choice)],
                "elsewhere": choice.heats if choice.heats is not None and choice.heats != self.room else None,
            }
            for index, choice in enumerate(self.relays)
        ]

    def preset_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in PRESET_FIELDS]

    # --- what the services get ---------------------------------------------------------------------------------

    def _service_check(self, name: str, value):
        """The services' own check of one field (writes nothing), so its refusal shows even while another field
        is missing."""
        try:
            return room_fields_check(room=self.room or Room(), fields={name: value})[name]
        except RoomInputError as error:
            raise forms.ValidationError(error.message) from None

    def clean_name(self) -> str:
        return self._service_check("name", self.cleaned_data["name"])

    def clean_slug(self) -> str:
        return self._service_check("slug", self.cleaned_data["slug"])

    def clean(self):
        cleaned = super().clean()
        chosen = set(cleaned.get("heaters") or [])
        for choice in self.relays:
            # The power of a relay not chosen is not used: whatever is typed there stops nothing.
            if choice.value not in chosen and _power_field_name(choice) in self._errors:
                del self._errors[_power_field_name(choice)]
        for value in cleaned.get("heaters") or []:
            choice = self._relay(value)
            if cleaned.get(_power_field_name(choice)) is None and _power_field_name(choice) not in self.errors:
                self.add_error(_power_field_name(choice), f"Give the power of {choice.label} in watts.")
        return cleaned

    def _relay(self, value: str) -> HeardEndpoint:
        return next(choice for choice in self.relays if choice.value == value)

    def temperature(self) -> tuple[Node | None, str]:
        value = self.cleaned_data.get("temperature_source")
        if not value:
            return None, ""
        choice = next(choice for choice in self.sources if choice.value == value)
        return choice.node, choice.endpoint

    def heaters_wanted(self) -> list[tuple[Node, str, int]]:
        return [
            (choice.node, choice.endpoint, self.cleaned_data[_power_field_name(choice)])
            for choice in map(self._relay, self.cleaned_data.get("heaters") or [])
        ]

    def presets(self) -> dict[str, float | None]:
        return {name: self.cleaned_data.get(name) for name in PRESET_FIELDS}

    def add_input_error(self, error: RoomInputError) -> None:
        """A service's refusal, on the field it names (``id`` is the slug, ``heaters[2]`` the heaters' list)."""
        field = {
            "id": "slug",
            "temperature_node": "temperature_source",
            "temperature_endpoint": "temperature_source",
        }.get(error.field, error.field)
        if field.startswith("heaters["):
            field = "heaters"
        if field not in self.fields:
            self.add_error(None, error.message)
            return
        self.add_error(field, error.message)
        widget = self.fields[field].widget
        if "is-invalid" not in widget.attrs.get("class", ""):
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()


def _initial(room: Room) -> dict:
    initial: dict = {"name": room.name, "slug": room.slug}
    if room.temperature_node_id is not None:
        initial["temperature_source"] = f"{room.temperature_node_id}:{room.temperature_endpoint}"
    heaters = list(room.heaters.all())
    initial["heaters"] = [f"{heater.node_id}:{heater.endpoint}" for heater in heaters]
    for heater in heaters:
        initial[f"power-{heater.node_id}-{heater.endpoint}"] = heater.power_w
    for name in PRESET_FIELDS:
        initial[name] = getattr(room, name)
    return initial
