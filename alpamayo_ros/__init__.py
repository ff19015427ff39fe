"""alpamayo_ros: a ROS 2 stack around reasoning vision-language-action driving models."""
