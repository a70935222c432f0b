"""The thermostat as pure functions: the heat/no-heat decision, weekly schedules and which target applies now."""
