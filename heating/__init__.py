"""panStamp radio nodes, rooms, heaters and the thermostat."""
